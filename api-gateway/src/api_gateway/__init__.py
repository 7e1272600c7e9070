"""FedImpute api-gateway: the platform's only public entry point."""
