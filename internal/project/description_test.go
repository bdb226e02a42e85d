package project

import (
	"strings"
	"testing"
)

func TestRenderDescription(t *testing.T) {
	tests := []struct {
		name, text, contentType, want string
	}{
		{"empty", "", "text/markdown", ""},
		{"blank", " \n\t\n", "text/x-rst", ""},
		{"markdown", "# Title\n\n**bold** and *em*\n", "text/markdown", "<h1>Title</h1>\n<p><strong>bold</strong> and <em>em</em></p>\n"},
		{"markdown with parameters", "**b**", "text/markdown; charset=UTF-8; variant=GFM", "<p><strong>b</strong></p>\n"},
		{"markdown type is case-insensitive", "**b**", "Text/Markdown", "<p><strong>b</strong></p>\n"},
		{"links get nofollow", "[x](https://example.com/)", "text/markdown", `<p><a href="https://example.com/" rel="nofollow">x</a></p>` + "\n"},
		{"rst is escaped text", "Title\n=====\n\n<b>x</b> & y\n", "text/x-rst", `<pre class="description-text">Title
=====

&lt;b&gt;x&lt;/b&gt; &amp; y
</pre>`},
		{"no type is rst", "<i>x</i>", "", `<pre class="description-text">&lt;i&gt;x&lt;/i&gt;</pre>`},
		{"plain", "a < b", "text/plain", `<pre class="description-text">a &lt; b</pre>`},
	}
	for _, tt := range tests {
		if got := RenderDescription(tt.text, tt.contentType); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestRenderDescriptionXSS feeds markdown attacks through the renderer: no
// output may carry script, an event handler or a script URL.
func TestRenderDescriptionXSS(t *testing.T) {
	attacks := []string{
		"<script>alert(1)</script>",
		"<img src=x onerror=alert(1)>",
		"<svg onload=alert(1)>",
		"[x](javascript:alert(1))",
		"[x](JAVASCRIPT:alert(1))",
		"[x](  javascript:alert(1))",
		"[x](java\tscript:alert(1))",
		"[x](&#106;avascript:alert(1))",
		"![x](javascript:alert(1))",
		"<a href=\"javascript:alert(1)\">x</a>",
		"<iframe src=\"https://evil.example\"></iframe>",
		"<div style=\"background:url(javascript:alert(1))\">x</div>",
		"[x]: javascript:alert(1)\n\n[y][x]",
		"<details open ontoggle=alert(1)>",
		"`<script>alert(1)</script>`",
		"```\n<script>alert(1)</script>\n```",
	}
	for _, a := range attacks {
		got := strings.ToLower(RenderDescription(a, "text/markdown"))
		for _, bad := range []string{"<script", "onerror", "onload", "ontoggle", "javascript:", "<iframe", "style="} {
			if strings.Contains(got, bad) {
				t.Errorf("RenderDescription(%q) = %q, contains %q", a, got, bad)
			}
		}
	}
}
