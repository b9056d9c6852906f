"""Building blocks of the reconstruction networks: complex <-> real channels at the network boundary,
complex-valued convolution stacks, data consistency and U-net blocks."""
