package io.ringserve.model.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Seeded generator of mixed text for the tokenizer benchmark: English prose, Java and Python code,
 * Chinese/Japanese/Korean text and emoji-heavy chat, each drawn with skewed (Zipf-like) frequencies
 * so words repeat the way they do in real text.
 */
final class BenchCorpus {

    private static final String[] WORDS = ("the of and to a in is it you that he was for on are with as I his they "
            + "be at one have this from or had by hot word but what some we can out other were all there when up use "
            + "your how said an each she which do their time if will way about many then them write would like so "
            + "these her long make thing see him two has look more day could go come did number sound no most people "
            + "my over know water than call first who may down side been now find any new work part take get place "
            + "made live where after back little only round man year came show every good me give our under name "
            + "very through just form sentence great think say help low line differ turn cause much mean before move "
            + "right boy old too same tell does set three want air well also play small end put home read hand port "
            + "large spell add even land here must big high such follow act why ask men change went light kind off "
            + "need house picture try us again animal point mother world near build self earth father model server "
            + "tokenizer inference latency throughput gradient attention transformer parameter benchmark request "
            + "response stream context window memory kernel tensor matrix vector embedding sequence language").split(" ");
    private static final String[] EMOJI = {"🙂", "😀", "😂", "🤔", "👍", "🚀", "🔥", "❤️", "✨", "🎉", "🙏", "💡",
            "📈", "🌍", "🇨🇳", "🇺🇸", "🇯🇵", "👩‍💻", "👨‍👩‍👧", "🏳️‍🌈", "✅", "❌", "⭐", "🤖", "🧠"};
    private static final String[] CJK_PUNCT = {"，", "。", "、", "！", "？", "：", "（", "）"};

    private final Random random;
    private final int[] hanzi;

    BenchCorpus(long seed) {
        random = new Random(seed);
        hanzi = new int[3500];
        Random pool = new Random(12345); // the same character pool for every seed
        for (int i = 0; i < hanzi.length; i++) {
            hanzi[i] = 0x4E00 + pool.nextInt(0x9FA5 - 0x4E00);
        }
    }

    /** Documents (about 1-4 KB each) until their UTF-8 size reaches {@code totalBytes}. */
    List<String> documents(long totalBytes) {
        List<String> docs = new ArrayList<>();
        long size = 0;
        while (size < totalBytes) {
            StringBuilder doc = new StringBuilder();
            int target = 1000 + random.nextInt(3000);
            while (doc.length() < target) {
                int kind = random.nextInt(100);
                if (kind < 50) {
                    english(doc);
                } else if (kind < 72) {
                    code(doc);
                } else if (kind < 92) {
                    cjk(doc);
                } else {
                    chat(doc);
                }
                doc.append(random.nextInt(4) == 0 ? "\n\n" : "\n");
            }
            String text = doc.toString();
            docs.add(text);
            size += text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        }
        return docs;
    }

    private int skewed(int n) {
        return (int) (n * Math.pow(random.nextDouble(), 2.5));
    }

    private String word() {
        return WORDS[skewed(WORDS.length)];
    }

    private void english(StringBuilder out) {
        int sentences = 1 + random.nextInt(5);
        for (int s = 0; s < sentences; s++) {
            int words = 4 + random.nextInt(16);
            for (int w = 0; w < words; w++) {
                String word = word();
                if (w == 0) {
                    word = Character.toUpperCase(word.charAt(0)) + word.substring(1);
                } else {
                    out.append(' ');
                }
                int r = random.nextInt(40);
                if (r == 0) {
                    out.append(random.nextInt(10_000));
                } else if (r == 1) {
                    out.append(word).append("'s");
                } else if (r == 2) {
                    out.append('"').append(word).append('"');
                } else if (r == 3) {
                    out.append(random.nextInt(100)).append('.').append(random.nextInt(1000));
                } else {
                    out.append(word);
                }
                if (w < words - 1 && random.nextInt(12) == 0) {
                    out.append(',');
                }
            }
            out.append(random.nextInt(8) == 0 ? "?" : ".").append(' ');
        }
    }

    private String identifier() {
        String a = word();
        String b = word();
        return a + Character.toUpperCase(b.charAt(0)) + b.substring(1);
    }

    private void code(StringBuilder out) {
        if (random.nextBoolean()) {
            String name = identifier();
            String arg = word();
            out.append("    public static int ").append(name).append("(int ").append(arg).append(", String ")
                    .append(identifier()).append(") {\n")
                    .append("        if (").append(arg).append(" > ").append(random.nextInt(100)).append(") {\n")
                    .append("            return ").append(arg).append(" * ").append(identifier()).append(".length();\n")
                    .append("        }\n        // TODO: ").append(word()).append(' ').append(word()).append('\n')
                    .append("        return Math.max(0, ").append(arg).append(" - 1);\n    }\n");
        } else {
            String fn = word() + "_" + word();
            out.append("def ").append(fn).append("(path, limit=").append(random.nextInt(1000)).append("):\n")
                    .append("    with open(path) as f:\n")
                    .append("        rows = [line.strip() for line in f if line]\n")
                    .append("    return {\"").append(word()).append("\": rows[:limit], \"n\": len(rows)}\n");
        }
    }

    private void cjk(StringBuilder out) {
        int kind = random.nextInt(10);
        int length = 10 + random.nextInt(60);
        for (int i = 0; i < length; i++) {
            if (i > 0 && random.nextInt(12) == 0) {
                out.append(CJK_PUNCT[random.nextInt(CJK_PUNCT.length)]);
            }
            if (kind < 6) {
                out.appendCodePoint(hanzi[skewed(hanzi.length)]);
            } else if (kind < 8) {
                out.appendCodePoint(random.nextBoolean() ? 0x3041 + skewed(0x56) : 0x30A1 + skewed(0x5A));
            } else {
                out.appendCodePoint(0xAC00 + skewed(11172));
                if (random.nextInt(4) == 0) {
                    out.append(' ');
                }
            }
        }
        out.append(kind < 8 ? "。" : ".");
    }

    private void chat(StringBuilder out) {
        int n = 2 + random.nextInt(8);
        for (int i = 0; i < n; i++) {
            out.append(random.nextBoolean() ? word() : EMOJI[skewed(EMOJI.length)]);
            out.append(random.nextInt(3) == 0 ? "" : " ");
        }
        out.append(EMOJI[random.nextInt(EMOJI.length)]).append("!!");
    }
}
