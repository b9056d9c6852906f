"""Physics operators: centered orthonormal FFTs, masking, cropping and the MRI encoding operators."""
