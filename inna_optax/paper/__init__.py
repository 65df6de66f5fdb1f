"""The papers' demonstrations, apart from the optimizers: the nonsmooth problem of
Figure 1 (:mod:`inna_optax.paper.nonsmooth`) and the plots the notebooks and the
figure scripts draw (:mod:`inna_optax.paper.plots`, matplotlib)."""
