# Seed tutorial 002 ("Theano - introduction" notebook), ported to theanine.
# Changes: the import lines and print(); every cell's bare expression is printed. The notebook
# refers to variables defined in cells it does not show; they are defined here where first
# needed, marked "(not shown in the notebook)": the matrices a and b, sum_sqr (the z just
# above it), and `result`, whose gradient [1, 4, 48] at [3, 2, 4] is that of sum(x**(s+1)).
# The notebook calls f_dzdx([-2, 3]) on a graph that needs 3 elements (s has 3); it is called
# here with 3.
import itertools as it

import numpy as np

import theanine as th
import theanine.tensor as T

print(th.__version__)

x = T.scalar()
y = T.scalar()
z = T.scalar()
result = x * y + z
result_function = th.function(inputs=[x, y, z], outputs=result)
print(result_function(3, 2, 1))

x = T.dvector()
y = T.dvector()
vec_result = x + y
f = th.function(inputs=[x, y], outputs=vec_result)
print(f(np.array([1, 2, 3]), np.array([4, 5, 6])))
print(f(np.array([1, 2, 3, -1, -2, -3]), np.array([5, 6, 7, 8, 9, 10])))

vec_result = x.dot(y)
f = th.function(inputs=[x, y], outputs=vec_result)
print(f(np.array([1, 2, 3]), np.array([4, 5, 6])))

x = T.dmatrix()
y = T.dmatrix()
mat_result = x + y
f = th.function(inputs=[x, y], outputs=mat_result)
print(f(np.array([[1, 2, 3], [10, 20, 30]]), np.array([[4, 5, 6], [40, 50, 60]])))
print(f(np.array([[1, 2], [10, 20], [100, 200]]), np.array([[4, 5], [40, 50], [400, 500]])))
print(f(np.array([[1, 2, 3]]), np.array([[4, 5, 6]])))

a = T.dmatrix()  # (not shown in the notebook)
b = T.dmatrix()  # (not shown in the notebook)
mat_mult = a * b
f = th.function(inputs=[a, b], outputs=mat_mult)
print(f(np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])))

mat_mult = a.dot(b)
f = th.function(inputs=[a, b], outputs=mat_mult)
print(np.array([[1, 2, 3], [3, 2, 1]]))
print(np.array([[7, 8], [9, 10], [11, 12]]))
print(f(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[7, 8], [9, 10], [11, 12]])))

x = T.scalar()
y = x ** 2 + 3*x + 4
dydx = T.grad(y, x)
f_dydx = th.function(inputs=[x], outputs=dydx)
print(f_dydx(2))

x = T.dscalar()
y = T.dscalar()
z = x**3 + y**2 + x*y
dzdx = T.grad(z, x)
f_dzdx = th.function(inputs=[x, y], outputs=dzdx)
print(f_dzdx(2, 3))

dzdy = T.grad(z, y)
f_dzdy = th.function(inputs=[x, y], outputs=dzdy)
print(f_dzdy(2, 3))

dzdxdy = T.grad(z, [x, y])
f_dzdxdy = th.function(inputs=[x, y], outputs=dzdxdy)
print(f_dzdxdy(2, 3))

x = T.dvector()
z = T.sum(x.dot(x))
sum_sqr = z  # (not shown in the notebook)
f = th.function(inputs=[x], outputs=sum_sqr)
print(f([1, 2, 3]))

dzdx = T.grad(sum_sqr, x)
f_dzdx = th.function(inputs=[x], outputs=dzdx)
print(f_dzdx([-2, 3]))

s = th.shared(np.array([0, 1, 2]))
z = T.sum(x**s)
f = th.function(inputs=[x], outputs=z)
print(f([6, 5, 4]))

dzdx = T.grad(z, x)
f_dzdx = th.function(inputs=[x], outputs=dzdx)
print(f_dzdx([-2, 3, 4]))

result = T.sum(x**(s + 1))  # (not shown in the notebook)
dfdx = T.grad(result, x)
fun_dfdx = th.function(inputs=[x], outputs=dfdx)
print(fun_dfdx([3, 2, 4]))

# Multi linear regression example
N_samples = 10  # training sample size
N_variables = 3  # number of input variables
training_steps = 10000  # number of training iterations

x_start = 0
x_stop = 1
x_numof = 5

rnd_mul = 0.001

x_gen = np.random.randint(1, 4, 1+N_variables)
print(x_gen)

x_train = np.column_stack([np.ones(x_numof**N_variables),
                           np.array(list(it.product(np.linspace(0, 1, 5),
                                                    repeat=N_variables)))])

y_train = x_train.dot(x_gen) + np.random.randn(x_numof**N_variables) * rnd_mul
print(y_train.shape, y_train)

x = T.matrix("x")
y = T.vector("y")

w = th.shared(np.random.randn(1+N_variables), name="w")
print('Initial model (w):', w.get_value())

prediction = T.dot(x, w)
predict = th.function(inputs=[x], outputs=prediction)
print(predict(x_train[0:3]))

cost = T.mean(T.sqr(T.dot(x, w) - y))
cost_grad = T.grad(cost, w)
train = th.function(
    inputs=[x, y],
    outputs=[cost],
    updates=[(w, w - 0.1 * cost_grad)])

for i in range(10000):
    err = train(x_train, y_train)
    print('err :', err)

print("Generating model:", x_gen)
print("Final model (w):", w.get_value())
print("predictions (on x_train):", predict(x_train))
print("target values (y_train):", y_train)
