"""MLflow: runs, registered versions and LoggedModels mirrored from the store, the pyfunc flavor."""
