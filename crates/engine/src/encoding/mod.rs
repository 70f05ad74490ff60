//! Column encodings for timestamps, integers, floats, booleans and strings.
//! (Filled in by the encodings work; see the storage-engine issue.)
