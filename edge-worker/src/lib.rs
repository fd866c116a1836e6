//! The edge worker (filled in by the edge-worker issue).
