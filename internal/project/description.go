package project

import (
	"bytes"
	"html"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// RenderDescription turns a release's long description into HTML that is
// safe to put on a page.
//
// Markdown (text/markdown) is rendered with goldmark (GFM tables, strikethrough,
// autolinks) and then sanitized with bluemonday's UGC policy: a description
// is text written by anyone with an upload token, so script, event handlers,
// iframes and javascript: URLs are removed no matter what the markup says.
// reStructuredText, the default, and plain text are shown as preformatted
// escaped text: readable, and with nothing that a browser would execute.
func RenderDescription(text, contentType string) string {
	if strings.TrimSpace(text) == "" {
		return ""
	}
	base, _, _ := strings.Cut(contentType, ";")
	if strings.EqualFold(strings.TrimSpace(base), "text/markdown") {
		var buf bytes.Buffer
		md := goldmark.New(goldmark.WithExtensions(extension.GFM))
		if err := md.Convert([]byte(text), &buf); err == nil {
			p := bluemonday.UGCPolicy()
			p.RequireNoFollowOnLinks(true)
			p.AddTargetBlankToFullyQualifiedLinks(false)
			return p.Sanitize(buf.String())
		}
	}
	return `<pre class="description-text">` + html.EscapeString(text) + `</pre>`
}
