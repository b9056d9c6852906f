"""Implicit models: root solvers and the deep-equilibrium layer with SHINE backward modes.

- `solvers`: batched, graph-compatible root solvers of ``g(z) = 0`` (fixed point, Anderson, limited-memory
  Broyden returning its inverse-Jacobian factors, adjoint Broyden with OPA updates);
- `backward`: the backward direction ``w ~ J^-T grad`` of an implicit model by mode (``implicit``,
  ``shine``, ``shine-fallback``, ``shine-refine``, ``jacobian-free``);
- `deq`: the `deq.DEQ` Keras layer (fixed point of ``f(z, x)``, gradients by those modes).

Bilevel optimisation with those modes (l2-regularised logistic regression) is an experiment,
``experiments/deq_shine/``.
"""
