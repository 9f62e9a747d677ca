package io.ringserve.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import io.ringserve.protocol.v1.WorkerProto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Keeps the protocol contract documented: every message, enum, enum value, service, rpc, oneof and field of
 * worker.proto is declared on a line directly after exactly one non-empty {@code //} comment line.
 */
class ProtocolDocumentationTest {

    private static final String PROTO = "ringserve/v1/worker.proto";
    private static final Pattern NOT_A_DECLARATION =
            Pattern.compile("^(syntax|package|import|option)\\b.*|^}$");

    private static List<String> lines;

    @BeforeAll
    static void readProto() throws IOException {
        String text;
        try (InputStream in = ProtocolDocumentationTest.class.getClassLoader().getResourceAsStream(PROTO)) {
            text = in != null
                    ? new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    : Files.readString(Path.of("src/main/proto", PROTO));
        }
        lines = text.lines().toList();
    }

    /** Every declaration line, whatever it declares, has its comment. */
    @Test
    void everyDeclarationLineHasOneCommentLine() {
        List<String> undocumented = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("//") || NOT_A_DECLARATION.matcher(line).matches()) {
                continue;
            }
            if (!documented(i)) {
                undocumented.add((i + 1) + ": " + line);
            }
        }
        assertEquals(List.of(), undocumented, "declarations of " + PROTO + " without exactly one // comment line");
    }

    /** Every element protoc compiled is found in the text (so the line scan cannot miss one) and documented. */
    @Test
    void everyCompiledElementIsDocumented() {
        List<String> problems = new ArrayList<>();
        Block file = new Block(0, lines.size());
        for (ServiceDescriptor service : WorkerProto.getDescriptor().getServices()) {
            Block body = check(problems, file, "service", service.getFullName(),
                    "service\\s+" + service.getName() + "\\s*\\{");
            for (MethodDescriptor method : service.getMethods()) {
                check(problems, body, "rpc", method.getFullName(), "rpc\\s+" + method.getName() + "\\s*\\(.*");
            }
        }
        for (EnumDescriptor type : WorkerProto.getDescriptor().getEnumTypes()) {
            checkEnum(problems, file, type);
        }
        for (Descriptor type : WorkerProto.getDescriptor().getMessageTypes()) {
            checkMessage(problems, file, type);
        }
        assertEquals(List.of(), problems);
    }

    @Test
    void headerStatesTheVersioningRules() {
        String header = String.join("\n", lines.subList(0, lines.indexOf("syntax = \"proto3\";")));
        assertFalse(header.isBlank());
        for (String rule : List.of("ringserve.v2", "round-trip test")) {
            assertTrue(header.contains(rule), "header comment mentions " + rule);
        }
    }

    private void checkMessage(List<String> problems, Block scope, Descriptor type) {
        Block body = check(problems, scope, "message", type.getFullName(), "message\\s+" + type.getName() + "\\s*\\{");
        for (OneofDescriptor oneof : type.getRealOneofs()) {
            check(problems, body, "oneof", oneof.getFullName(), "oneof\\s+" + oneof.getName() + "\\s*\\{");
        }
        for (FieldDescriptor field : type.getFields()) {
            check(problems, body, "field", field.getFullName(),
                    "((optional|repeated)\\s+)?[\\w.]+\\s+" + field.getName()
                            + "\\s*=\\s*" + field.getNumber() + "\\s*;.*");
        }
        for (Descriptor nested : type.getNestedTypes()) {
            checkMessage(problems, body, nested);
        }
        for (EnumDescriptor nested : type.getEnumTypes()) {
            checkEnum(problems, body, nested);
        }
    }

    private void checkEnum(List<String> problems, Block scope, EnumDescriptor type) {
        Block body = check(problems, scope, "enum", type.getFullName(), "enum\\s+" + type.getName() + "\\s*\\{");
        for (EnumValueDescriptor value : type.getValues()) {
            check(problems, body, "enum value", value.getFullName(),
                    value.getName() + "\\s*=\\s*" + value.getNumber() + "\\s*;.*");
        }
    }

    /** Finds the one declaration matching {@code regex} in {@code scope}; returns its body (or the scope). */
    private Block check(List<String> problems, Block scope, String kind, String name, String regex) {
        Pattern pattern = Pattern.compile(regex);
        int found = -1;
        for (int i = scope.from(); i < scope.to(); i++) {
            if (pattern.matcher(lines.get(i).strip()).matches()) {
                found = i;
                break;
            }
        }
        if (found < 0) {
            problems.add(kind + " " + name + ": declaration not found in " + PROTO);
            return scope;
        }
        if (!documented(found)) {
            problems.add(kind + " " + name + " (line " + (found + 1) + "): no single // comment line before it");
        }
        return lines.get(found).contains("{") ? bodyOf(found) : scope;
    }

    /** Line {@code i} is directly preceded by exactly one comment line with text. */
    private static boolean documented(int i) {
        if (i == 0 || !isComment(i - 1)) {
            return false;
        }
        boolean oneLine = i == 1 || !isComment(i - 2);
        return oneLine && !lines.get(i - 1).strip().substring(2).isBlank();
    }

    private static boolean isComment(int i) {
        return lines.get(i).strip().startsWith("//");
    }

    private static Block bodyOf(int open) {
        int depth = 0;
        for (int i = open; i < lines.size(); i++) {
            String line = lines.get(i);
            int comment = line.indexOf("//");
            String code = comment >= 0 ? line.substring(0, comment) : line;
            for (char c : code.toCharArray()) {
                if (c == '{') {
                    depth++;
                } else if (c == '}') {
                    depth--;
                }
            }
            if (depth == 0) {
                return new Block(open + 1, i + 1);
            }
        }
        return new Block(open + 1, lines.size());
    }

    private record Block(int from, int to) {
    }
}
