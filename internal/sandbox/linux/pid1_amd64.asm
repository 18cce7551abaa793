# pid 1 of a Flint linux sandbox once its runtime runs (pid1_amd64.go). First it writes its
# argv[1] (12 bytes: the init's msgStarted, 'S' and the runtime's pid) on descriptor 3, the
# control socket: the server learns that the exec is over (a freeze during it would deadlock).
# Then it reaps every child and reports each one's pid and wait status there, as one 9-byte
# message: 'W', pid, status (little-endian int32s); it exits when no child is left.
# Build: as --64 -o pid1.o pid1_amd64.asm && ld -static -nostdlib -s --build-id=none -z noseparate-code -o pid1 pid1.o
# (binutils 2.40), then its bytes go into pid1_amd64.go.
	.globl _start
	.text
_start:
	mov	16(%rsp), %rsi		# argv[1]
	test	%rsi, %rsi
	jz	0f
	mov	$3, %edi
	mov	$12, %edx
	mov	$1, %eax		# write
	syscall
0:
	mov	$157, %eax		# prctl(PR_SET_DUMPABLE, 0)
	mov	$4, %edi
	xor	%esi, %esi
	syscall
	sub	$16, %rsp
	movb	$'W', 3(%rsp)
1:
	mov	$-1, %edi		# any child
	lea	8(%rsp), %rsi		# &status
	xor	%edx, %edx		# options
	xor	%r10d, %r10d		# rusage
	mov	$61, %eax		# wait4
	syscall
	cmp	$-4, %rax		# EINTR
	je	1b
	test	%rax, %rax
	js	2f			# ECHILD: no child left
	mov	%eax, 4(%rsp)		# pid
	mov	$3, %edi
	lea	3(%rsp), %rsi
	mov	$9, %edx
	mov	$1, %eax		# write
	syscall
	jmp	1b
2:
	xor	%edi, %edi
	mov	$231, %eax		# exit_group
	syscall
