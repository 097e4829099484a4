import numpy as np

from learnsolve.pde.optimization.pde_control import pde_control
from learnsolve.solvers import kaczmarz, run_methods, sketch_newton
from learnsolve.solvers.linear.operators import laplacian_csr

# optimal control of Poisson's equation on a 4 x 4 grid: n = 32 unknowns, m = 16 constraints
nlp = pde_control(4)
res = sketch_newton(nlp, tol=1e-6, method="kaczmarz", seed=0)
print(res.status, res.iterations, res.inner_iterations, f"f = {res.objective:.8g}",
      f"rel. error {res.f_relative_error:.1e}", f"KKT {res.kkt_residual:.1e}")

# the same problem through the benchmark harness, against scipy's SQP solvers
rows = run_methods(nlp, ["sketch-newton:kaczmarz", "scipy:trust-constr", "scipy:SLSQP"], tol=1e-6)
for r in rows:
    print(f"{r['method']:23s} {r['status']:8s} {r['iterations']:4d} iterations  "
          f"f = {r['f']:.8g}  KKT {r['kkt_residual']:.1e}")

# the sketching solver on a linear system: randomized Kaczmarz, ||b - Ax|| <= 1e-8 ||b||
A = laplacian_csr(2, 8, diag=6.0)  # 64 x 64, diagonally dominant
lin = kaczmarz(A, np.ones(64), rtol=1e-8, seed=0)
print(lin.status, lin.iterations, f"{lin.relative_residual:.1e}")
