package io.ringserve.model.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.json.JsonMapper;

/** Every case of the transformers-rendered fixture must come out byte for byte the same. */
class ChatTemplateGoldenTest {
    private static final String FIXTURE = "/golden/chat-templates/expected.chat-templates.json";

    @SuppressWarnings("unchecked")
    private static Map<String, Object> fixture() throws IOException {
        try (InputStream in = ChatTemplateGoldenTest.class.getResourceAsStream(FIXTURE)) {
            assertNotNull(in, "missing test resource " + FIXTURE);
            return JsonMapper.builder().build().readValue(in, Map.class);
        }
    }

    @SuppressWarnings("unchecked")
    static Stream<Arguments> cases() throws IOException {
        Map<String, Object> fixture = fixture();
        Map<String, String> templates = (Map<String, String>) fixture.get("templates");
        List<Arguments> out = new ArrayList<>();
        for (Object o : (List<Object>) fixture.get("cases")) {
            Map<String, Object> c = (Map<String, Object>) o;
            String name = c.get("template") + "/" + c.get("case");
            Map<String, Object> variables = new LinkedHashMap<>();
            variables.put("messages", c.get("messages"));
            variables.put("bos_token", "<|startoftext|>");
            variables.put("eos_token", "<|endoftext|>");
            variables.putAll((Map<String, Object>) c.get("kwargs"));
            out.add(Arguments.of(name, templates.get((String) c.get("template")), variables, c.get("rendered")));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersLikeTransformers(String name, String template, Map<String, Object> variables, String expected) {
        String actual = ChatTemplate.compile(template).render(variables);
        if (!expected.equals(actual)) {
            int i = 0;
            while (i < Math.min(expected.length(), actual.length()) && expected.charAt(i) == actual.charAt(i)) {
                i++;
            }
            fail(name + ": first difference at index " + i + "\nexpected: …" + around(expected, i)
                    + "\nactual:   …" + around(actual, i) + "\nfull actual:\n" + actual);
        }
    }

    @Test
    void fixtureCoversBothTemplates() throws IOException {
        Map<String, Object> fixture = fixture();
        assertEquals(2, ((Map<?, ?>) fixture.get("templates")).size());
        assertEquals(20, cases().count());
    }

    private static String around(String s, int i) {
        return s.substring(Math.max(0, i - 20), Math.min(s.length(), i + 40)).replace("\n", "\\n");
    }
}
