package io.ringserve.model.template;

import static io.ringserve.model.template.TemplateTestSupport.render;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** trim_blocks, lstrip_blocks, "-"/"+" markers, comments and raw, as jinja2 lexes them. */
class ChatTemplateWhitespaceTest {

    @Test
    void trimBlocksAndLstripBlocks() {
        assertEquals("<a>\n    x\n  y\nz", render("<a>\n  {% if true %}\n    x\n  {% endif %}\n  {{ 'y' }}\n{# c #}\nz\n"));
        assertEquals("    line1\n    1\n    2\nend\n",
                render("{% if true %}\n    line1\n{% endif %}\n{% for i in [1, 2] %}\n    {{ i }}\n{% endfor %}\nend\n\n"));
        assertEquals("  text\n\tin\n  after", render("  {# comment #}\n  text\n\t{% if true %}\n\tin\n\t{% endif %}  after\n"));
        assertEquals("  B\n", render("{% if a %}\n  A\n{% elif b %}\n  B\n{% else %}\n  C\n{% endif %}", "b", 1));
    }

    @Test
    void explicitStripAndKeepMarkers() {
        assertEquals("abc d ef\n g\nh",
                render("a  {%- if true -%}  b  {%- endif -%}  c {{- ' d ' -}} e {#- x -#} f\n {%+ if true %}g{% endif +%}\nh"));
        assertEquals("1  y  z", render("{%- set x = 1 -%}\n\n  {{ x }}  \n\n{%- if x %}  y  {% endif -%}\n\n z"));
    }

    @Test
    void indentedTemplateRendersCompactly() {
        String template = "{%- for message in messages -%}\n    {%- if message.role == 'user' -%}\n"
                + "        U:{{ message.content }}\n    {%- elif message.role == 'assistant' -%}\n"
                + "        A:{{ message.content }}\n    {%- endif -%}\n{%- endfor -%}";
        assertEquals("U:hiA:yo", render(template, "messages", java.util.List.of(
                java.util.Map.of("role", "user", "content", "hi"), java.util.Map.of("role", "assistant", "content", "yo"))));
    }

    @Test
    void rawBlocksAreNotParsed() {
        assertEquals("{{ not parsed }}x", render("{% raw %}{{ not parsed }}{% endraw %}\n  {% raw %}x{% endraw %}"));
        assertEquals("abc", render("a\n  {%- raw -%}  b  {%- endraw -%}  \nc"));
    }

    @Test
    void lineEndingsAreNormalizedAndOneTrailingNewlineDropped() {
        assertEquals("a\nb\nc\n", render("a\r\nb\rc\n\n"));
    }
}
