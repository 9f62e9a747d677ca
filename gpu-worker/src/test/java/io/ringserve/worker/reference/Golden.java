package io.ringserve.worker.reference;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** A golden fixture (test resources: tiny-ring-a, tiny-ring-lite-a): prompts with reference logits, hidden states, routes, greedy ids. */
public final class Golden {
    public record Prompt(String name, int[] inputIds, float[] logits, int[] logitsShape, float[] hidden, int[] hiddenShape,
                         int[][][] routes, int[] greedy24, float[] hfBf16Logits) {
    }

    private Golden() {
    }

    public static Path dir(String name) {
        try {
            return Path.of(Golden.class.getResource("/golden/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static List<Prompt> prompts(String model) {
        Path dir = dir(model);
        try {
            JsonNode root = JsonMapper.builder().build().readTree(Files.readString(dir.resolve("expected.json")));
            List<Prompt> out = new ArrayList<>();
            for (JsonNode p : root.get("prompts")) {
                String name = p.get("name").stringValue();
                int[][][] routes = new int[p.get("routes").size()][][];
                for (int l = 0; l < routes.length; l++) {
                    JsonNode layer = p.get("routes").get(l);
                    routes[l] = new int[layer.size()][];
                    for (int t = 0; t < routes[l].length; t++) {
                        routes[l][t] = ints(layer.get(t));
                    }
                }
                out.add(new Prompt(name, ints(p.get("input_ids")), floats(dir.resolve(p.get("logits_file").stringValue())), ints(p.get("logits_shape")),
                        floats(dir.resolve(p.get("hidden_file").stringValue())), ints(p.get("hidden_shape")), routes, ints(p.get("greedy_24")),
                        floats(dir.resolve("hf_bf16." + name + ".logits.f32"))));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Seeded random prompt ids among the fixture tokenizer's 1536 BPE entries (no special tokens). */
    public static int[] randomPrompt(long seed, int length) {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(seed);
        int[] p = new int[length];
        for (int i = 0; i < length; i++) {
            p[i] = rng.nextInt(1536);
        }
        return p;
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    public static float[] floats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    /** ‖a − b‖₂ / ‖b‖₂ over {@code a[aOff..aOff+n)} and {@code b[bOff..bOff+n)}. */
    public static double relL2(float[] a, int aOff, float[] b, int bOff, int n) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < n; i++) {
            double diff = (double) a[aOff + i] - b[bOff + i];
            num += diff * diff;
            den += (double) b[bOff + i] * b[bOff + i];
        }
        return Math.sqrt(num / den);
    }

    public static double relL2(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        return relL2(a, 0, b, 0, a.length);
    }
}
