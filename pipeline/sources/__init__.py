"""Where raw data comes from: dataset archives (downloaded, checked and unpacked safely) and the
built-in renderer of synthetic heads that writes the real datasets' formats."""
