package io.ringserve.model.template;

import static io.ringserve.model.template.TemplateTestSupport.render;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code tojson} must equal Python's {@code json.dumps(x, ensure_ascii=False)} (expectations from CPython). */
class ChatTemplateJsonTest {

    @Test
    void defaultSeparatorsUnicodeKeptAndEscapes() {
        assertEquals("{\"b\": 1, \"a\": [1, 2.5, \"é\\\"\\\\\\n\\u0001\"], \"n\": null, \"t\": true}",
                render("{{ {'b': 1, 'a': [1, 2.5, 'é\"\\\\\\n\\u0001'], 'n': none, 't': true} | tojson }}"));
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("name", "f");
        tool.put("x", Arrays.asList(1, 2.0, null, true));
        tool.put("emoji", "😀 \u2028 \u007f");
        assertEquals("[{\"name\": \"f\", \"x\": [1, 2.0, null, true], \"emoji\": \"😀 \u2028 \u007f\"}]",
                render("{{ tools|tojson }}", "tools", List.of(tool)));
    }

    @Test
    void indentAsciiSortAndSeparators() {
        assertEquals("{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": 2\n    }\n  ]\n}",
                render("{{ {'a': [], 'b': {}, 'c': [1, {'d': 2}]} | tojson(indent=2) }}"));
        assertEquals("\"\\u5317\\u4eac\"{\"a\": 2, \"b\": 1}[1,2]", render("{{ '北京' | tojson(ensure_ascii=true) }}"
                + "{{ {'b':1,'a':2}|tojson(sort_keys=true) }}{{ [1,2]|tojson(separators=(',', ':')) }}"));
    }

    @Test
    void floatsUsePythonRepr() {
        assertEquals("{\"k\": 1.0, \"big\": 1e+20, \"small\": 1e-07, \"int\": 10, \"neg\": -2.5, \"b\": false}",
                render("{{ {'k': 1.0, 'big': 1e20, 'small': 1e-7, 'int': 10, 'neg': -2.5, 'b': false} | tojson }}"));
        assertEquals("[1, 2] {\"city\": \"北京\", \"n\": 0.4}",
                render("{{ (1, 2)|tojson }} {{ args|tojson }}", "args", TemplateTestSupport.vars("city", "北京", "n", 0.4)));
    }
}
