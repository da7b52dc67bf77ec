//! Nothing: the tests are this package's test targets (see tests/).
