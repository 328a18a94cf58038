"""firebreak's core: incident domain, service, ports and the adapters that implement them."""
