//! Import of the OpenFeature flagd flag-definition format. (Stub: the flagd work fills this in.)
