"""One module per `manage.py` command; each stays thin and calls the services."""
