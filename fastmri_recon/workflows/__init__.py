"""Multi-step jobs that train, load published weights and evaluate: the papers' tables.

- `benchmark`: ``fastmri-recon benchmark``, tables (a) and (b) trained briefly on the demo data or fastMRI's;
- `published`: ``fastmri-recon benchmark --weights published``, tables (a) and (b) from the papers' weights;
- `tuning`: a baseline's regularisation weight chosen by PSNR on a split;
- `table_c`: table (c), NC-PDNet against the density-compensated adjoint (``fastmri-recon benchmark --table c``);
- `table_d`: table (d), DEQ-XPDNet with SHINE against the unrolled XPDNet (``fastmri-recon benchmark --table d``).

They sit above `training` and `hub`, whose runs and weights they use; only the command line is above them.
"""
