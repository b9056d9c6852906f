"""The benchmark code's Keras-2 weight files: reading them (`h5`), where their weights go in the
package's models (`layouts`) and loading / converting them (`load`)."""
