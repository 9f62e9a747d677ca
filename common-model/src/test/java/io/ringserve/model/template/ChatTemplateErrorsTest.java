package io.ringserve.model.template;

import static io.ringserve.model.template.TemplateTestSupport.render;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Failures surface as TemplateException where jinja2 raises, with messages a user can act on. */
class ChatTemplateErrorsTest {

    @Test
    void raiseExceptionCarriesTheTemplatesMessage() {
        String template = "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
                + "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
        TemplateException e = assertThrows(TemplateException.class,
                () -> render(template, "messages", List.of(Map.of("role", "tool"))));
        assertEquals(TemplateException.Kind.RAISED, e.kind());
        assertEquals("Only user and assistant roles are supported!", e.detail());
        assertEquals("Chat template error: Only user and assistant roles are supported!", e.getMessage());
    }

    @Test
    void syntaxErrorNamesLineAndColumn() {
        TemplateException e = assertThrows(TemplateException.class,
                () -> ChatTemplate.compile("line one\n{% if x %}\n  {{ a + }}\n{% endif %}"));
        assertEquals(TemplateException.Kind.SYNTAX, e.kind());
        assertEquals(3, e.line());
        assertEquals(10, e.column());
        assertTrue(e.getMessage().contains("line 3, column 10"), e.getMessage());
    }

    @Test
    void unclosedBlockAndUnknownTagAreSyntaxErrors() {
        TemplateException unclosed = assertThrows(TemplateException.class, () -> ChatTemplate.compile("{% for x in y %}\nx"));
        assertTrue(unclosed.getMessage().contains("'endfor'"), unclosed.getMessage());
        TemplateException unknown = assertThrows(TemplateException.class, () -> ChatTemplate.compile("a\n\n {% endif %}"));
        assertEquals(3, unknown.line());
        assertEquals(5, unknown.column());
        assertTrue(unknown.getMessage().contains("unknown tag 'endif'"), unknown.getMessage());
        TemplateException brk = assertThrows(TemplateException.class, () -> ChatTemplate.compile("{% break %}"));
        assertTrue(brk.getMessage().contains("'break' outside loop"), brk.getMessage());
        assertThrows(TemplateException.class, () -> ChatTemplate.compile("{{ 'unterminated }}"));
        assertThrows(TemplateException.class, () -> ChatTemplate.compile("{# no end"));
    }

    @Test
    void typeErrorsMatchPython() {
        assertEquals("can only concatenate str (not \"int\") to str", renderError("{{ 'a' + 1 }}").detail());
        assertEquals("unsupported operand type(s) for +: 'int' and 'str'", renderError("{{ 1 + 'a' }}").detail());
        assertEquals("'<' not supported between instances of 'int' and 'str'", renderError("{{ 1 < 'a' }}").detail());
        assertEquals("division by zero", renderError("{{ 1 / 0 }}").detail());
        // "~" binds tighter than "+", so this is 1 + '23'
        assertEquals("unsupported operand type(s) for +: 'int' and 'str'", renderError("{{ 1 + 2 ~ 3 }}").detail());
        assertEquals("'int' object is not iterable", renderError("{% for x in 5 %}{% endfor %}").detail());
        assertEquals("Object of type Undefined is not JSON serializable", renderError("{{ x | tojson }}").detail());
    }

    @Test
    void usingUndefinedBeyondTestingFailsLikeJinja() {
        assertEquals("'x' is undefined", renderError("{{ x.y }}").detail());
        TemplateException e = renderError("\n{{ m.tool_calls[0] }}", "m", Map.of());
        assertEquals("'dict object' has no attribute 'tool_calls'", e.detail());
        assertEquals(2, e.line());
        assertEquals("'x' is undefined", renderError("{{ x + 1 }}").detail());
    }

    @Test
    void sandboxRefusesMutationAndNamespaceOnlyAcceptsAttributes() {
        assertEquals("access to attribute 'append' of 'list' object is unsafe.",
                renderError("{{ messages.append(1) }}", "messages", List.of()).detail());
        assertEquals("cannot assign attribute on non-namespace object",
                renderError("{% set n = 1 %}{% set n.b = 2 %}").detail());
    }

    private static TemplateException renderError(String template, Object... vars) {
        TemplateException e = assertThrows(TemplateException.class, () -> render(template, vars));
        assertEquals(TemplateException.Kind.RENDER, e.kind(), e.getMessage());
        return e;
    }
}
