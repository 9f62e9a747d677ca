package io.ringserve.model.tokenizer;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** Locates the golden tokenizer files on the test classpath. */
final class GoldenFiles {

    static final JsonMapper JSON = JsonMapper.builder().build();

    private GoldenFiles() {
    }

    static Path path(String name) {
        URL url = GoldenFiles.class.getResource("/golden/tokenizer/" + name);
        if (url == null) {
            throw new IllegalStateException("missing test resource golden/tokenizer/" + name);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path tokenizerJson() {
        return path("tokenizer.json");
    }

    static JsonNode expected() {
        return JSON.readTree(path("expected.tokenizer.json").toFile());
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }
}
