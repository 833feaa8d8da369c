"""Quality-assurance tools that run beside the tests, not in an installed tonus: the pytest plugin."""
