"""Volume drivers: the local one, directories under the data root."""
