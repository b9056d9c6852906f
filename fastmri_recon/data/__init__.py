"""Data: the fastMRI HDF5 schema, undersampling masks, trajectories and tf.data pipelines."""
