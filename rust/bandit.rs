//! bandit (to be written).
