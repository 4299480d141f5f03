"""Arabic text tools: normalisation and match keys, MinHash signatures, language identification."""
