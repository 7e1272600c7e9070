"""service-registry: the external imputation services the platform can use, their reference
panels, their health (checked all the time by the health worker) and discovery."""
