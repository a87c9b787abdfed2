/* toolbox: a library function and, with -DMAIN, a program using it. */
#ifndef MAIN
int tb_answer(void) { return 42; }
#else
#include <stdio.h>
int tb_answer(void);
int main(void) { printf("%d\n", tb_answer()); return 0; }
#endif
