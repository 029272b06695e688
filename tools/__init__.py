"""Project tools: recipe training, conversion, benchmarks and README generation (not shipped)."""
