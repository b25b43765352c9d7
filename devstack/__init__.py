"""Local services for the demo and the tests: PostgreSQL and ``mlflow server`` as plain processes."""
