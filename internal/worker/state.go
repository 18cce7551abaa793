package worker

type envState int

const (
	stateStarting envState = iota
	stateIdle
	stateBusy
	stateDead
)
