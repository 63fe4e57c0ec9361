# up.gp -- gnuplot: time of `up` against N, one line per method, one panel
# per shape. Called by prereq.sh's plot_up with dir, out and shapes set.
set terminal pngcairo size 1200,520 font "sans,11"
set output out
set logscale xy
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set xlabel "hosts (N)"
set ylabel "up, seconds (median)"
set key top left box opaque
set format y "%g"
set style data linespoints
n = words(shapes)
set multiplot layout 1, n title "Building \"1 router + N hosts\" in a 2-core sandbox: lower is better"
do for [i = 1:n] {
	shape = word(shapes, i)
	file = dir."/up-".shape.".dat"
	set title shape
	cols = system("head -1 ".file." | wc -w") - 1
	plot for [c = 2:cols + 1] file using 1:c title columnhead(c) . "" lw 2 pt 7
}
unset multiplot
