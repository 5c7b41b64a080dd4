//! gearmand
