"""Head pose benchmark harness: DVC stages and the data code they share."""
