"""pyserial URL handlers: `serial.protocol_handler_packages.append("sim.urlhandler")` enables sim://."""
