package upstream

import "errors"

// ErrNoCount is the error of a count for a model whose tokens cannot be
// counted: it has no public tokenizer and its provider no count endpoint.
var ErrNoCount = errors.New("no tokenizer or count endpoint for this model")
