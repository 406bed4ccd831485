/*
 * cli.h - what the command-line programs (matchnet-match, matchnet-colmap,
 * matchnet-stitch, and the evaluation programs in eval/) share: one
 * table-driven option parser, one-line errors, counts, a clock, a progress
 * line. C, with extern "C" guards for the C++ programs.
 *
 * A program describes its options once, in a table, and mn_cli_parse()
 * reads argv into it and writes the --help text from it:
 *
 *   static const mn_cli_choice modes[] = {{"fast", 0}, {"exact", 1}, {NULL, 0}};
 *   int threads = 0, mode = 0, verbose = 0;
 *   const char *out = NULL, *pos[2];
 *   const mn_cli_option table[] = {
 *       {"output", 'o', MN_CLI_STRING, &out, .placeholder = "PATH", .help = "write to PATH"},
 *       {"threads", 0, MN_CLI_INT, &threads, 1, 64, .placeholder = "N", .help = "threads"},
 *       {"mode", 0, MN_CLI_CHOICE, &mode, .choices = modes, .placeholder = "NAME", .help = "fast or exact"},
 *       {"verbose", 'v', MN_CLI_FLAG, &verbose, .help = "say more"},
 *   };
 *   const mn_cli_program prog = {"prog", "usage: prog [options] IN\n\noptions:\n", table, 4, 2};
 *   int npos, rc = mn_cli_parse(&prog, argc, argv, pos, &npos);
 *   if (rc) return rc == 1 ? 0 : 2;     // 1: help printed; 2: error reported
 *
 * Accepted forms: --name value, --name=value, -c value, -c=value, flags as
 * --name or -c; -h and --help print the help; "--" makes every later
 * argument positional; "-" alone is positional. The last of repeated
 * options wins. Errors are one line on stderr naming the option as typed:
 *   prog: --threads: expected an integer 1..64, got 'x'
 */
#ifndef MN_CLI_H
#define MN_CLI_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What an option's value is, and the type its dest points to. */
typedef enum mn_cli_kind {
    MN_CLI_FLAG,   /**< no value; int *dest is set to 1 */
    MN_CLI_INT,    /**< int *dest: a whole decimal number in [lo, hi] */
    MN_CLI_DOUBLE, /**< double *dest: a finite number in [lo, hi] */
    MN_CLI_STRING, /**< const char **dest: the value as given (into argv) */
    MN_CLI_CHOICE  /**< int *dest: the value of the choice whose name was given */
} mn_cli_kind;

/** One name an MN_CLI_CHOICE option accepts, and the value it stores. */
typedef struct mn_cli_choice {
    const char *name;
    int value;
} mn_cli_choice;

/** One option of a program's table. */
typedef struct mn_cli_option {
    const char *name;              /**< long name without "--" ("threads"), or NULL for a short one only */
    char letter;                   /**< short name ('o' for -o), or 0 */
    mn_cli_kind kind;
    void *dest;                    /**< where the value goes; its type depends on kind */
    double lo, hi;                 /**< MN_CLI_INT (within int), MN_CLI_DOUBLE: accepted range */
    const mn_cli_choice *choices;  /**< MN_CLI_CHOICE: the names, ended by {NULL, 0} */
    const char *placeholder;       /**< the value's name in the help and messages ("N", "PATH") */
    const char *help;              /**< help text; each '\n' starts an indented continuation line */
} mn_cli_option;

/** A program's command line. */
typedef struct mn_cli_program {
    const char *name;              /**< starts every error line: "matchnet-match" */
    const char *synopsis;          /**< --help prints it, then a line per option, then -h/--help */
    const mn_cli_option *options;
    size_t n_options;
    int max_positional;            /**< room in the caller's positional array */
} mn_cli_program;

/**
 * Read argv[1..argc) into the program's options, and the positional
 * arguments into pos[0 .. *npos) (pos has room for max_positional). Returns
 * 0; 1 after printing the help on stdout (-h, --help); 2 after a usage
 * error reported as one line on stderr (unknown option, missing or bad
 * value, more positional arguments than max_positional). Options not given
 * keep what their dest held.
 */
int mn_cli_parse(const mn_cli_program *prog, int argc, char **argv, const char **pos, int *npos);

/** "PROG: message" and a newline on stderr (after erasing a progress line
 *  on the screen, so that the message starts a line of its own). */
void mn_cli_error(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** A whole decimal number in [lo, hi], or -1. */
long mn_cli_parse_count(const char *s, long lo, long hi);

/** Monotonic clock in seconds. */
double mn_cli_seconds(void);

/*
 * A progress line for long runs, on a terminal only: a person watching
 * wants to know how far it is, a pipe or a CI log wants no '\r' lines.
 *
 *   mn_cli_progress pr;
 *   mn_cli_progress_init(&pr, "prog", when);         // when: --progress's value
 *   for (i = 0; i < n; i++) {
 *       ...
 *       mn_cli_progress_update(&pr, "images", i + 1, n, NULL);
 *   }
 *   mn_cli_progress_clear(&pr);                       // before other output, and at the end
 *
 * shows, rewritten in place, at most 5 times a second:
 *   prog: images 12/40 (30%), 8 s elapsed, ~19 s left
 * The time left comes from the rate since the phase began: a new `what`
 * (or a smaller count) begins one, at the time of the update before.
 */

/** --progress's values: when the progress line is shown. */
enum { MN_CLI_PROGRESS_AUTO = 0, MN_CLI_PROGRESS_ALWAYS = 1, MN_CLI_PROGRESS_NEVER = 2 };

/** The names --progress takes: auto, always, never. */
extern const mn_cli_choice mn_cli_progress_choices[];

/** --progress's help text, the same in every program. */
#define MN_CLI_PROGRESS_HELP "auto (default: a progress line when stderr is a\nterminal), always or never"

/** A progress line's state; fields are private to cli.c. */
typedef struct mn_cli_progress {
    FILE *out;         /* stderr; a test may point it elsewhere */
    const char *prog;
    int on;            /* shown at all */
    int columns;       /* terminal width: longer lines would wrap and break '\r' */
    int shown;         /* characters of the line now on the screen, 0 for none */
    double t_start, t_phase, t_drawn, t_called;
    size_t last_done;
    char phase[64];
} mn_cli_progress;

/** Start: on for MN_CLI_PROGRESS_ALWAYS, or for MN_CLI_PROGRESS_AUTO when
 *  stderr is a terminal; never for MN_CLI_PROGRESS_NEVER. */
void mn_cli_progress_init(mn_cli_progress *p, const char *prog, int when);

/**
 * Show "prog: what done/total (pct%), T elapsed, ~T left, extra": total 0
 * for an unknown total (then "what done", or "what" for done 0), extra
 * NULL for none. Drawn at most every 0.2 s, and always for a new phase
 * and for done == total. Does nothing when the line is off.
 */
void mn_cli_progress_update(mn_cli_progress *p, const char *what, size_t done, size_t total, const char *extra);

/** Erase the line if one is on the screen (before writing anything else to
 *  the terminal, and before p goes away). */
void mn_cli_progress_clear(mn_cli_progress *p);

/** --progress's value for a name (auto, always, never), or -1: for the
 *  programs that do not parse with mn_cli_parse(). */
int mn_cli_progress_when(const char *name);

#ifdef __cplusplus
}
#endif

#endif
