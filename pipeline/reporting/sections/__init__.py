"""The report's sections, one module per paper and one for what serves both."""
