"""Building blocks of the reconstruction networks: complex <-> real channels at the network boundary
(`complex`), convolution stacks (`conv`), data consistency (`data_consistency`), the U-net (`unet`),
the Haar wavelet transform (`haar`), the MWCNN and DIDN denoisers (`mwcnn`, `didn`) and their sizes
(`denoisers`), the multiscale complex denoiser wrapper (`multiscale`) and coil-map helpers (`coils`)."""
