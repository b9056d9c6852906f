"""Evaluation: the fastMRI metrics (PSNR, SSIM, NMSE), evaluation loops, tables and figures."""
