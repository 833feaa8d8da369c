"""The simulated board: the real firmware/ on simulated hardware, in simulated time."""
