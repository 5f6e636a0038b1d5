"""Runtime side: one executor module per task type. Runs inside the task type's image (or in-process
for local runs); imports its heavy dependencies lazily so that authors importing a task type pay
for flytekit only."""
