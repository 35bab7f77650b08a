"""The dataverse backend."""
