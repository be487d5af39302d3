"""The versioned code lists (taxonomy.yaml) and their loader."""
