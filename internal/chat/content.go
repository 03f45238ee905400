package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// Content part types.
const (
	PartText     = "text"
	PartImageURL = "image_url"
)

// Content is a message's content in one of the three forms OpenAI allows: a
// string, an array of parts, or null (assistant messages that only call
// tools). The zero value is null. It marshals back to the form it was read in.
type Content struct {
	text    string
	parts   []Part
	isParts bool
	isText  bool
}

// TextContent returns string content.
func TextContent(s string) Content { return Content{text: s, isText: true} }

// PartsContent returns array content.
func PartsContent(parts ...Part) Content {
	if parts == nil {
		parts = []Part{}
	}
	return Content{parts: parts, isParts: true}
}

// IsNull reports whether the content is null (or absent).
func (c Content) IsNull() bool { return !c.isText && !c.isParts }

// IsParts reports whether the content is an array of parts.
func (c Content) IsParts() bool { return c.isParts }

// Parts returns the content as parts: string content becomes one text part,
// null content none.
func (c Content) Parts() []Part {
	switch {
	case c.isParts:
		return c.parts
	case c.isText:
		return []Part{{Type: PartText, Text: c.text}}
	}
	return nil
}

// Text returns the text of the content: the string itself, or the text parts
// joined with no separator (images are skipped).
func (c Content) Text() string {
	if !c.isParts {
		return c.text
	}
	if len(c.parts) == 1 {
		return c.parts[0].Text
	}
	var b strings.Builder
	for _, p := range c.parts {
		if p.Type == PartText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// MarshalJSON renders the content in its original form.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.isParts:
		if c.parts == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(c.parts)
	case c.isText:
		return json.Marshal(c.text)
	}
	return []byte("null"), nil
}

var errContentType = errors.New("content must be a string, an array of content parts, or null")

// UnmarshalJSON accepts a string, an array of parts, or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errContentType
	}
	switch b[0] {
	case 'n':
		*c = Content{}
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errContentType
		}
		*c = TextContent(s)
		return nil
	case '[':
		var parts []Part
		if err := json.Unmarshal(b, &parts); err != nil {
			var ce *contentPartError
			if errors.As(err, &ce) {
				return ce
			}
			return errors.New("content parts must be objects with a string \"type\"")
		}
		*c = PartsContent(parts...)
		return nil
	}
	return errContentType
}

// Part is one element of array content: text, or an image by URL (https or a
// data: URL).
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image reference; Detail is "auto", "low" or "high".
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type contentPartError struct{ msg string }

func (e *contentPartError) Error() string { return e.msg }

// MarshalJSON renders text parts with their text even when empty, so that
// {"type":"text","text":""} round-trips.
func (p Part) MarshalJSON() ([]byte, error) {
	if p.Type == PartText {
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	}
	type plain Part
	return json.Marshal(plain(p))
}

// UnmarshalJSON reads a part, reporting wrong field types clearly.
func (p *Part) UnmarshalJSON(b []byte) error {
	type plain Part
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &contentPartError{msg: "content part field \"" + te.Field + "\" has the wrong type"}
		}
		return &contentPartError{msg: "content parts must be objects"}
	}
	*p = Part(v)
	return nil
}
