package io.ringserve.model.template;

import static io.ringserve.model.template.TemplateTestSupport.render;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Expressions, statements, filters, tests and methods; every expectation was produced by jinja2 3.1. */
class ChatTemplateLanguageTest {
    private static final List<Map<String, Object>> MESSAGES = List.of(
            Map.of("role", "system", "content", "S"),
            Map.of("role", "user", "content", "Hi 北京"),
            Map.of("role", "assistant", "content", "<think>\nr\n</think>\n\nA"));

    @Test
    void slicingWithStepsAndNegativeIndices() {
        assertEquals("assistant,user,system|2|assistant|[2, 4]|fdb|ab|[]",
                render("{{ messages[::-1]|map(attribute='role')|join(',') }}|{{ messages[1:]|length }}|"
                        + "{{ messages[-1].role }}|{{ [1,2,3,4,5][1:4:2] }}|{{ 'abcdef'[::-2] }}|{{ 'abc'[-5:2] }}|"
                        + "{{ [1,2,3][5:] }}", "messages", MESSAGES));
        assertEquals("bc|c|x😀", render("{{ 'abc'[1:] }}|{{ 'abc'[-1] }}|{{ '😀x'[::-1] }}"));
    }

    @Test
    void namespaceAttributesSurviveLoopScopesButPlainSetDoesNot() {
        assertEquals("True 1", render("{% set ns = namespace(found=false, n=0) %}{% for m in messages %}"
                + "{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}"
                + "{% endfor %}{{ ns.found }} {{ ns.n }}", "messages", MESSAGES));
        assertEquals("False", render("{% set found = false %}{% for m in messages %}{% set found = true %}"
                + "{% endfor %}{{ found }}", "messages", MESSAGES));
        assertEquals("11", render("{% if true %}{% set s = 1 %}{% endif %}{{ s }}"
                + "{% for i in [1] %}{% set s = 2 %}{% endfor %}{{ s }}"));
        assertEquals("0506070", render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i + 5 %}{{ x }}"
                + "{% endfor %}{{ x }}"));
    }

    @Test
    void loopVariables() {
        assertEquals("10TrueFalse332;21FalseFalse321;32FalseTrue310;",
                render("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                        + "{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }};{% endfor %}", "messages", MESSAGES));
        assertEquals("a-2;b13;a2-;111213", render("{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}"
                + "{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }};{% endfor %}"
                + "{% for row in [[1,2],[3]] %}{% for c in row %}{{ loop.depth }}{{ c }}{% endfor %}{% endfor %}"));
    }

    @Test
    void forElseFilterUnpackingBreakContinueAndRecursion() {
        assertEquals("empty|2242|a=1;b=[2];|z1", render("{% for x in [] %}a{% else %}empty{% endfor %}|"
                + "{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}|"
                + "{% for k, v in {'a': 1, 'b': [2]}.items() %}{{ k }}={{ v }};{% endfor %}|"
                + "{% for k, v in {'z': 1}|items %}{{ k }}{{ v }}{% endfor %}"));
        assertEquals("0134", render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
                + "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"));
        assertEquals("abqr", render("{% for x in 'ab' %}{{ x }}{% endfor %}{% for k in {'q': 1, 'r': 2} %}{{ k }}"
                + "{% endfor %}{% for x in missing %}{{ x }}{% endfor %}"));
        List<Object> tree = List.of(
                Map.of("name", "a", "children", List.of(Map.of("name", "b", "children", List.of()))),
                Map.of("name", "c"));
        assertEquals("[a[b:2]:1][c:1]", render("{% for item in tree recursive %}[{{ item.name }}"
                + "{% if item.children %}{{ loop(item.children) }}{% endif %}:{{ loop.depth }}]{% endfor %}", "tree", tree));
    }

    @Test
    void operatorsAndPythonNumberFormatting() {
        assertEquals("3 -3 7.0 3.5 2.0 3 -4 1 2 1024 0.5 a1NoneTrue True False True True False False x y yes no [] "
                + "1000.0 0.30000000000000004 1e-05 1.2345678901234568e+16 -0.0 2.5",
                render("{{ 1 + 2 }} {{ 7 - 10 }} {{ 2 * 3.5 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 7 // 2 }} {{ -7 // 2 }} "
                        + "{{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 'a' ~ 1 ~ none ~ true }} "
                        + "{{ 1 < 2 < 3 }} {{ 3 > 2 > 5 }} {{ 1 == 1.0 }} {{ 'b' in ['a', 'b'] }} {{ 'c' not in 'abc' }} "
                        + "{{ not true }} {{ true and 'x' }} {{ 0 or 'y' }} {{ 'yes' if 1 else 'no' }} "
                        + "{{ 'yes' if 0 else 'no' }} [{{ 'yes' if 0 }}] {{ 1e3 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} "
                        + "{{ 12345678901234567.0 }} {{ -0.0 }} {{ 10 / 4 }}"));
        // jinja2 makes ** left-associative and applies unary minus before it
        assertEquals("a464205", render("{{ 'a' if true else 'b' if false else 'c' }}{{ 1 if none }}{{ -2 ** 2 }}"
                + "{{ 2 ** 3 ** 2 }}{{ (2 + 3) * 4 }}{{ 10 - 2 - 3 }}"));
        assertEquals("123xxx[0, 0]ababab", render("{{ [1,2,3]|join }}{{ 'x' * 3 }}{{ [0] * 2 }}{{ 3 * 'ab' }}"));
    }

    @Test
    void valuesRenderLikePythonStr() {
        assertEquals("None True False [1, 'a', None, True, 2.0] {'a': 'b', 1: [2]} (1, 2) (1,) it's "
                + "[\"it's\", 'q\"', 'a\\nb'] 42 -3",
                render("{{ none }} {{ true }} {{ false }} {{ [1, 'a', none, true, 2.0] }} {{ {'a': 'b', 1: [2]} }} "
                        + "{{ (1, 2) }} {{ (1,) }} {{ \"it's\" }} {{ [\"it's\", 'q\"', 'a\\nb'] }} {{ 42 }} {{ -3 }}"));
        assertEquals("éA\t|absay \"hi\"311000",
                render("{{ '\\u00e9\\x41\\t|' }}{{ 'a' 'b' }}{{ \"say \\\"hi\\\"\" }}{{ 0x1F }}{{ 1_000 }}"));
    }

    @Test
    void javaNumbersFromJsonBehaveLikePythonInts() {
        Map<String, Object> message = new HashMap<>();
        message.put("n", 41);
        message.put("f", 0.5f);
        message.put("none", null);
        assertEquals("42 0.5 None True", render("{{ m.n + 1 }} {{ m.f }} {{ m.none }} {{ m.n is integer }}", "m", message));
    }

    @Test
    void stringMethods() {
        assertEquals("True True ['a', 'b', '', 'c'] ['a', 'b'] ['a b', 'c'] ['a', 'b,c'] [x] [hi] [hi] [hi] abcABC a+b "
                + "Hello World Hello 2 2 a, b -1 abXc",
                render("{{ 'Hello World'.startswith('Hello') }} {{ 'abc'.endswith(('x','c')) }} {{ 'a,b,,c'.split(',') }} "
                        + "{{ ' a  b '.split() }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'a,b,c'.split(',', 1) }} "
                        + "[{{ '  x  '.strip() }}] [{{ 'xxhixx'.strip('x') }}] [{{ '\\n\\nhi'.lstrip('\\n') }}] "
                        + "[{{ 'hi  '.rstrip() }}] {{ 'AbC'.lower() }}{{ 'AbC'.upper() }} {{ 'a-b'.replace('-', '+') }} "
                        + "{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'hello'.find('l') }} "
                        + "{{ 'hello'.count('l') }} {{ ', '.join(['a', 'b']) }} {{ 'x'.find('y') }} "
                        + "{{ 'aXbXc'.replace('X', '', 1) }}"));
        assertEquals("abx-y-z2TrueTrue", render("{{ ''.join(['a', 'b']) }}{{ '-'.join('xyz') }}"
                + "{{ 'a b'.split(' ')|length }}{{ 'A'.isupper() }}{{ '12'.isdigit() }}"));
        assertEquals("r", render("{{ content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
                "content", "<think>\nr\n</think>\n\nA"));
    }

    @Test
    void dictMethods() {
        assertEquals("1 dflt None ['a', 'b'] [1, 'x'] [('a', 1), ('b', 'x')]",
                render("{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ d.keys()|list }} "
                        + "{{ d.values()|list }} {{ d.items()|list }}", "d", TemplateTestSupport.vars("a", 1, "b", "x")));
    }

    @Test
    void filters() {
        assertEquals("abc ABC 3 5 2 t 3 43 4 0 4 5 a-b dflt e None [3, 2, 1] cba ['a', 'b', 'c'] Hello world "
                + "Hello World-Foo bba",
                render("{{ 'AbC'|lower }} {{ 'AbC'|upper }} {{ [1,2,3]|length }} {{ 'héllo'|length }} {{ 'ab'|count }} "
                        + "{{ '  t  '|trim }} {{ 3|string }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 'x'|int }} "
                        + "{{ [4,5]|first }} {{ [4,5]|last }} {{ ['a','b']|join('-') }} {{ x|default('dflt') }} "
                        + "{{ ''|d('e', true) }} {{ none|default('n') }} {{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} "
                        + "{{ 'abc'|list }} {{ 'hello world'|capitalize }} {{ 'hello wORLD-foo'|title }} "
                        + "{{ 'aaa'|replace('a', 'b', 2) }}"));
        assertEquals("[1, 2, 3] ['A', 'b', 'c'] [3, 2, 1] yx [1, 2, 3] 5 1 6 [('a', 1), ('b', 2)] 3 2.57 2.0 4.0 7.0 "
                + "  x\n  y [[1, 2], [3, 4], [5]] 3 &lt;a&amp;b&gt;",
                render("{{ [3,1,2]|sort }} {{ ['b','A','c']|sort }} {{ [3,1,2]|sort(reverse=true) }} "
                        + "{{ users|sort(attribute='age')|map(attribute='n')|join }} {{ [1,2,2,3,1]|unique|list }} "
                        + "{{ [1,5,3]|max }} {{ [1,5,3]|min }} {{ [1,2,3]|sum }} {{ {'b':2,'a':1}|dictsort }} "
                        + "{{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 7|float }} "
                        + "{{ 'x\\ny'|indent(2, first=true) }} {{ [1,2,3,4,5]|batch(2)|list }} {{ 'a b  c'|wordcount }} "
                        + "{{ '<a&b>'|e }}",
                        "users", List.of(Map.of("n", "x", "age", 30), Map.of("n", "y", "age", 20))));
    }

    @Test
    void selectAndMapFilters() {
        List<Object> users = List.of(Map.of("name", "a", "active", true, "role", "admin"),
                Map.of("name", "b", "active", false, "role", "user"));
        assertEquals("a|['b']|1|0|b|[1, 3]|['A', 'B']|['?', '?']",
                render("{{ users|selectattr('active')|map(attribute='name')|join(',') }}|"
                        + "{{ users|rejectattr('active')|map(attribute='name')|list }}|"
                        + "{{ users|selectattr('role', 'equalto', 'admin')|list|length }}|"
                        + "{{ users|selectattr('missing', 'defined')|list|length }}|"
                        + "{{ users|selectattr('role', '==', 'user')|map(attribute='name')|first }}|"
                        + "{{ [1,2,3,4]|select('odd')|list }}|{{ ['a','B']|map('upper')|list }}|"
                        + "{{ users|map(attribute='nick', default='?')|list }}", "users", users));
    }

    @Test
    void tests() {
        assertEquals("True False False True True True True True True True True True False True True True True True "
                + "True True",
                render("{{ 'x' is string }} {{ 1 is string }} {{ x is defined }} {{ x is undefined }} {{ none is none }} "
                        + "{{ {} is mapping }} {{ [] is sequence }} {{ 'a' is iterable }} {{ 1 is number }} "
                        + "{{ 1.5 is number }} {{ true is true }} {{ false is false }} {{ 1 is true }} "
                        + "{{ 2 is equalto 2 }} {{ 3 is odd }} {{ 4 is divisibleby 2 }} {{ 'a' is in 'abc' }} "
                        + "{{ 1 is integer }} {{ 1.0 is float }} {{ x is not defined }}"));
    }

    @Test
    void missingKeysAreUndefinedAndFalsy() {
        Map<String, Object> message = Map.of("role", "user", "content", "hi");
        assertEquals("|False|no||hi|0|0", render("{{ m.tool_calls }}|{{ m.tool_calls is defined }}|"
                + "{% if m.tool_calls %}yes{% else %}no{% endif %}|{{ m['nope'] }}|{{ m.content }}|"
                + "{{ (m.tool_calls or [])|length }}|{{ m.tool_calls|default([])|length }}", "m", message));
        assertEquals("bcFalseFalse", render("{{ 'abc'[1] }}{{ 'abc'[-1] }}{{ [1,2][2] is defined }}"
                + "{{ messages[0] is defined }}", "messages", List.of()));
        assertEquals("||", render("{{ none.x }}|{{ 1.x }}|"));
    }

    @Test
    void blockSetMacroCallFilterAndWith() {
        assertEquals("[block 2]UPHi Bob! Hi Al?<inner>SHOUT5",
                render("{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper %}up{% endset %}{{ y }}"
                        + "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} "
                        + "{{ greet('Al', punct='?') }}{% macro wrap() %}<{{ caller() }}>{% endmacro %}"
                        + "{% call wrap() %}inner{% endcall %}{% filter upper %}shout{% endfilter %}"
                        + "{% with a = 5 %}{{ a }}{% endwith %}{{ a }}"));
        assertEquals("321", render("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}"));
        assertEquals("127", render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{% set c, d = t %}{{ c + d }}"));
    }

    @Test
    void printfAndFormat() {
        assertEquals("Bob is 42 years 003.1 ab   | ff [1] a and b X!     r 2.50 'q'",
                render("{{ '%s is %d years' % ('Bob', 42) }} {{ '%05.1f' % 3.14159 }} {{ '%-5s|' % 'ab' }} "
                        + "{{ '%x' % 255 }} {{ '%s'|format([1]) }} {{ '{} and {}'.format('a', 'b') }} "
                        + "{{ '{name}!'.format(name='X') }} {{ '{:>5}'.format('r') }} {{ '{:.2f}'.format(2.5) }} "
                        + "{{ '%r' % 'q' }}"));
        assertEquals("2.000 a-b    42|42   | 1.234568e+04 0.0001234 1.23457e+06 +3 %",
                render("{{ '%.3f'|format(2) }} {{ '%s-%s'|format('a', 'b') }} {{ '%5d|%-5d|' % (42, 42) }} "
                        + "{{ '%e' % 12345.678 }} {{ '%g' % 0.0001234 }} {{ '%g' % 1234567.0 }} {{ '%+d' % 3 }} "
                        + "{{ '%%' % () }}"));
    }

    @Test
    void globals() {
        assertEquals("[0, 1, 2] [1, 4, 7] [5, 3, 1] {\"a\": 1} 1",
                render("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1)|tojson }} "
                        + "{{ namespace(a=1).a }}"));
        Clock clock = Clock.fixed(Instant.parse("2024-07-26T09:05:03Z"), ZoneOffset.UTC);
        assertEquals("26 Jul 2024 | 2024-07-26 09:05:03 | Friday July 26",
                ChatTemplate.compile("{{ strftime_now('%d %b %Y') }} | {{ strftime_now('%Y-%m-%d %H:%M:%S') }} | "
                        + "{{ strftime_now('%A %B %-d') }}").render(Map.of(), clock));
    }

    @Test
    void callerDataIsNotModified() {
        List<Object> messages = new ArrayList<>(List.of(new HashMap<>(Map.of("role", "user", "content", "x"))));
        String before = messages.toString();
        render("{% set messages = messages[1:] %}{% set m = namespace(a=1) %}{% set m.a = 2 %}{{ messages }}",
                "messages", messages);
        assertEquals(before, messages.toString());
    }

    @Test
    void compiledTemplateRendersRepeatedlyWithDifferentVariables() {
        ChatTemplate t = ChatTemplate.compile("{% for m in messages %}{{ m.role }};{% endfor %}");
        assertEquals("a;", t.render(Map.of("messages", List.of(Map.of("role", "a")))));
        assertEquals("b;c;", t.render(Map.of("messages", List.of(Map.of("role", "b"), Map.of("role", "c")))));
    }

    @Test
    void aConversationGetsTheGenerationPromptKwargsAndOnlyTheSpecialTokensTheTokenizerHas() {
        ChatTemplate t = ChatTemplate.compile("{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                + "{% if add_generation_prompt %}<gen{{ '/think' if enable_thinking else '' }}>{% endif %}{{ eos_token }}");
        List<Map<String, Object>> messages = List.of(Map.of("role", "user", "content", "hi"));
        assertEquals("<s>[user:hi]<gen/think></s>", t.renderConversation(messages, Map.of("enable_thinking", true), "<s>", "</s>"));
        // an undefined special token renders as nothing, as in transformers, not as "None"
        assertEquals("[user:hi]<gen>", t.renderConversation(messages, Map.of(), null, null));
    }
}
