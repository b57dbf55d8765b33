/*
 * c_hello: an Aether function written in C, built with clang and wasi-libc
 * (see build.sh). Like every Aether function it is a WASI command: the
 * request input is stdin, the response is stdout, and the exit code is
 * reported to the caller.
 *
 * It greets with $GREETING (default "Hello"), names the function from
 * argv[0], and echoes how many bytes of input it received:
 *
 *   aether deploy examples/c_hello/c_hello.wasm --env GREETING=Bonjour
 *   aether invoke c_hello --input '"Ada"'
 *   → {"greeting":"Bonjour from C!","function":"c_hello","input_bytes":5}
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *greeting = getenv("GREETING");
    if (greeting == NULL || greeting[0] == '\0') {
        greeting = "Hello";
    }
    const char *name = argc > 0 ? argv[0] : "c_hello";

    /* Count the input without holding it: stdin is an in-memory pipe. */
    char buf[4096];
    size_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        total += n;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "c_hello: cannot read the input\n");
        return 1;
    }

    /* Names and greetings are plain text: print them as JSON strings,
     * escaping what JSON requires. */
    printf("{\"greeting\":\"");
    for (const char *p = greeting; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    printf(" from C!\",\"function\":\"%s\",\"input_bytes\":%zu}\n", name, total);
    return 0;
}
