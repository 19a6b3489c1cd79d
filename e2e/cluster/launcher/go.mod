module thv-e2e/cluster/launcher

go 1.26.0
